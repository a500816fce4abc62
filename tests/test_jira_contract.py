"""The Jira tracker passes the tracker contract on both deployment types."""

from __future__ import annotations

import pytest

from certrenew.adapters.tracker.jira import JiraTracker
from tests.contract.tracker_contract import TrackerContract


@pytest.mark.parametrize("jira_server", ["Server", "Cloud"], indirect=True)
class TestJiraTrackerContract(TrackerContract):
    @pytest.fixture
    def tracker(self, jira_tracker: JiraTracker) -> JiraTracker:
        return jira_tracker
