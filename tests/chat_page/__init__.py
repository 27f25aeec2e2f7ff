"""The chat page at ``/``, in a real Chromium against a real ``roomz-server`` on loopback."""
