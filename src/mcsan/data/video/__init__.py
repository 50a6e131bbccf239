"""Clips to frame features: decoding (PyAV), the frame encoder, the feature store, extraction,
and the one clip writer."""
