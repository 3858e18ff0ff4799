"""Mail: what each mail says (`mails`, composed at send time from current data, in the recipient's
language), how it is rendered (`rendering`, `fastmime`) and delivered (`delivery`, the mail kinds'
batch runner, through the mail relay: `relay/`, its connections and quota shared by every worker;
or `transport`, .eml files). Reminders and host digests are scheduled here too, and bulk mail
against the relay's quota (`mail_schedule`, `relay_notice`). Mails are queued like all work,
through their kinds in seminar/jobs/kinds.py.
"""
