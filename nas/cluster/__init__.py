"""What a Ray cluster whose nodes lack this package gets from the driver: the code (a runtime environment of our
packages and the user's modules, :mod:`nas.cluster.shipping`) and a place for the files a worker writes that must
survive (:mod:`nas.cluster.files`). Used by the runtime; below it, above storage."""
