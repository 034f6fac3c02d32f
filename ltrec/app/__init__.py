"""The application layer: who may do what (:mod:`ltrec.app.auth`), the audited write actions
every front end calls (:mod:`ltrec.app.services`), the audit log (:mod:`ltrec.app.audit`), the
one recommendation pipeline (:mod:`ltrec.app.pipeline`: a run -> candidate pool -> re-ranked
list with reasons, for the CLI, the Studio, the simulator and the API) and the Rerank Studio's
logic (:mod:`ltrec.app.studio`)."""
