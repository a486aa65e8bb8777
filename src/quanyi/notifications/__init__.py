"""Notifications (通知): buyer e-mail and SMS, merchant group-robot alerts, all through an outbox."""
