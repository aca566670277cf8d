"""W.W.H.D. infrastructure components: one ComponentResource per file."""
