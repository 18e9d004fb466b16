"""The conversations API (``conversations-api``): agents and admin tools read conversations,
take them over, answer, close and reopen them, and export or erase an end user's data."""
