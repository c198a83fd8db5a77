"""Access: tiers, network rules, tokens, and the IIIF auth services that tell viewers about them."""
