"""``ltrec serve``: the recommendation API (FastAPI on uvicorn, DESIGN §11).

* :mod:`.keys`: API keys (``ltrec apikey``), stored hashed with a role each;
* :mod:`ltrec.app.live_events` (below, in the application layer, which deletes a dataset's log
  with it): real-time events, validated by the importer's rules, written to a write-ahead file
  before they are acknowledged and moved into the store by one flusher; the A/B experiments'
  records are :mod:`ltrec.app.live_experiments`;
* :mod:`.metrics`: the Prometheus text of ``/metrics``;
* :mod:`.service`: the one :class:`~ltrec.app.pipeline.RecSession` a server holds, its live
  history and the swap of a reload;
* :mod:`.app`: the routes, the errors (always JSON) and :func:`~.app.serve`.
"""
