"""Speech engines behind one small contract (see ``base``)."""
