"""Captions to levels: parsing (rules and repairs), vocabulary and word vectors, attribute labels."""
