"""One-shot (gradient) search: its settings, the supernet, the bilevel step and the supernet job."""
