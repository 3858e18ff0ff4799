"""Sign-up, confirmation, waitlist and cancellation of registrations."""
