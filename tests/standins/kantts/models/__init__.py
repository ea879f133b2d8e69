"""STAND-IN for ``kantts.models`` (tests only): the real one builds the SAMBERT acoustic model."""
