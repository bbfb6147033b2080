"""SEPM file formats: pure parsers from bytes to frozen facts, no I/O."""
