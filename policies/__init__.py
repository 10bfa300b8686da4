"""Pure checks on (request, response, calibration result) -> Verdict.

Never imports ``guard``. The built-in policies arrive with the policies issue.
"""

__all__: list[str] = []
