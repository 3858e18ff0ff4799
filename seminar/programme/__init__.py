"""The seminar programme: creating, publishing, changing and cancelling seminars."""
