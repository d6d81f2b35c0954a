"""Credit scorecards (``model = "scorecard"``): binning → selection → logistic regression → points."""
from vfl.scorecard.family import FAMILIES, ScorecardFamily
from vfl.scorecard.model import ActiveScorecard, PassiveScorecard

__all__ = ["FAMILIES", "ActiveScorecard", "PassiveScorecard", "ScorecardFamily"]
