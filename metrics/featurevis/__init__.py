"""Feature visualisation: representation inversion, class-conditional generation and their scores."""
