"""Runtime feature flags with environment pins and a kill switch."""
