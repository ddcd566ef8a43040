// Live case events over WS /ws/live: reconnects with back-off and catches up what it missed
// (`since` = the last event id seen); on "resync" the page reloads its lists. A socket closed
// because the session ended (4401: logout, expiry, password reset, disabled) goes to the login
// page instead of reconnecting; one refused for too many sockets (4429) retries slowly.
const SESSION_ENDED = 4401;
const TOO_MANY_SOCKETS = 4429;

export function connectLive({ onEvent, onResync, onStatus }) {
  let lastId = null, delay = 1000, socket = null, stopped = false;

  function open() {
    const url = new URL("/ws/live", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (lastId !== null) url.searchParams.set("since", lastId);
    socket = new WebSocket(url);
    socket.onopen = () => { delay = 1000; onStatus && onStatus("online"); };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "hello") { if (lastId === null) lastId = data.id; return; }
      if (data.type === "resync") { lastId = data.id; onResync && onResync(); return; }
      if (data.id) lastId = data.id;
      if (data.type === "case.created" || data.type === "case.updated") onEvent(data);
    };
    socket.onclose = (event) => {
      onStatus && onStatus("offline");
      if (stopped) return;
      if (event.code === SESSION_ENDED) {
        location.assign("/login?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (event.code === TOO_MANY_SOCKETS) delay = 30000;
      setTimeout(open, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 30000);
    };
  }
  open();
  return { close() { stopped = true; socket && socket.close(); } };
}
