"""Public pages: the programme, a seminar's page with the sign-up form, health."""
