"""Read-only views of the results database: the leaderboard's analysis (typed values), its tables described once and
written as markdown and HTML, figures, results JSON and the regression gate."""
