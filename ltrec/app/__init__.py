"""The application layer: who may do what (:mod:`ltrec.app.auth`), the audited write actions
every front end calls (:mod:`ltrec.app.services`) and the audit log (:mod:`ltrec.app.audit`)."""
