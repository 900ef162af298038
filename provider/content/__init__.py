"""What is in an image: signed vulnerability reports, SBOMs and VEX statements, summarised into facts."""
