"""After the seminar: attendance, certificates of attendance, follow-up mails, evaluation."""
