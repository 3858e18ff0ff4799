"""Mail: what each mail says (`mails`, composed at send time from current data, in the recipient's
language), how it is rendered (`rendering`, `fastmime`) and delivered (`delivery`, the mail kinds'
batch runner; `transport`, SMTP or files). Reminders and host digests are scheduled here too.
Mails are queued like all work, through their kinds in seminar/jobs/kinds.py.
"""
