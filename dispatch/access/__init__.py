"""Access: who may see and do what (policy), accounts and tokens (auth), throttles."""
