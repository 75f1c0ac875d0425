//! reconcile handler
