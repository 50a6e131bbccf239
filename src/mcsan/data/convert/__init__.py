"""Community dataset files to the native format: the format registry, one module per
format, the feature readers and the shared conversion pipeline."""
