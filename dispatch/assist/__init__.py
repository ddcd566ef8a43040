"""Operator assist (SPEC §9): category suggestion (智能分类), the knowledge base (知识库), repeat
callers and similar cases, put together for `GET /api/assist`.

* `classifier.py` — character n-gram TF-IDF + logistic regression, trained here on the city's
  own words and its operators' classified tickets; pure functions, no I/O.
* `training.py` — collects the training set (city package + store), trains off the event loop,
  stores the model with its version, and keeps every process on the newest stored model.
* `knowledge.py` — the article index (character n-grams, BM25) and the versioned article store.
* `callers.py` — a caller's recent tickets, the repeat-request test and similar-case scoring.
* `service.py` — `Assist`: one call answering `GET /api/assist`.
"""
