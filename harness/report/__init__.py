"""Read-only views of the results database: analysis, markdown, figures, results JSON and the regression gate."""
