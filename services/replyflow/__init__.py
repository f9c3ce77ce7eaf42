"""replyflow: event-driven moderation and reply services for creators' comment streams."""

__version__ = "0.1.0"
