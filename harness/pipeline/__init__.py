"""The parent-side stages of one run: lifecycle, attack chunks, explanations, feature visualisation, figures."""
