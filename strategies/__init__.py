"""Search strategies (ask/tell objects), one module each. The registry and the strategies land with the
strategies issue; this package exists so that the layout is in place."""
