"""One-shot (gradient) search: its settings, the search described as data, the supernet, the bilevel step and the
search's runner."""
