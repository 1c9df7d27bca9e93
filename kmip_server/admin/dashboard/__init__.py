"""The web dashboard, served on the admin listener under ``/dashboard``.

=========================  ==================================================================
 path                       page
=========================  ==================================================================
 /dashboard                 overview: objects by state, type and algorithm; objects created
                            and operations per day (SVG bar charts); rotations due; recent
                            failures in the audit trail
 /dashboard/keys            the objects, searchable by name (or identifier), type and state
 /dashboard/key?uid=U       one object: its attributes as text (never key material or any
                            byte value), links, lifecycle timeline and audit records
 /dashboard/audit           the audit trail with filters; "Verify the trail" runs the verifier
 /dashboard/approvals       the approval queue; approve and deny (POST, CSRF token) as the
                            logged-in identity through the approval desk
 /dashboard/explain         ``strongroom policy explain`` as a form
 /dashboard/login?t=LINK    a ``strongroom dashboard-link`` link: sets the session cookie
=========================  ==================================================================

Who: a client certificate's identity or a login link's name, as the access policy maps it.
Administrators (``[policy] admin_identities``, a role with ``administrator = true``) and
auditors (a role named ``auditor``) see every page, read only; approving and denying still
needs the approver role (the desk checks it). An approver who is neither sees only the
approval queue. Anyone else gets 403, and a visit with no certificate and no valid session 401
(a page saying how to log in). Links, sessions and CSRF tokens: auth.py.

Server-rendered with Jinja2 (autoescaping on), with one CSS file and a few lines of JavaScript
served from here (no CDN); answers carry a strict Content-Security-Policy.
"""

# Nothing imported here: `strongroom dashboard-link` (cli.py) must not load Jinja2 and the
# views, which every strongroom command would then pay for at start.
