"""Every channel variable the dialplan and the controller share, named once.

The rendered extensions.conf and the controller both import these names, so a rename
cannot leave one side behind.
"""

#: The number the citizen dialled (12345 or a legacy line), set by the dialplan.
LINE = "IVR_LINE"
#: The SIP Call-ID of the caller's leg, so ``ivr call`` can find its ticket.
SIP_CALL_ID = "IVR_SIP_CALL_ID"
#: Caller ID number and name in base64, as received: res_agi writes the header's
#: agi_callerid/agi_calleridname unescaped, so a line break in them would split it.
CALLER_NUM_B64 = "IVR_CALLER_NUM_B64"
CALLER_NAME_B64 = "IVR_CALLER_NAME_B64"
#: What the controller asks the dialplan to do after the AGI returns.
ACTION = "IVR_ACTION"
#: The queue the dialplan should put the caller in for ACTION=queue.
QUEUE = "IVR_QUEUE"
#: Queue() timeout in seconds for ACTION=queue.
QUEUE_TIMEOUT = "IVR_QUEUE_TIMEOUT"
#: Where the dialplan should send the caller for ACTION=transfer (a dial string).
TRANSFER_TARGET = "IVR_TRANSFER_TARGET"
#: The caller's language for prompts played by the dialplan (zh or en).
LANGUAGE = "IVR_LANGUAGE"
#: Set on calls that took the dialplan's fallback because the controller was unreachable.
FALLBACK = "IVR_FALLBACK"
#: Asterisk's own result of AGI(): SUCCESS, FAILURE, NOTFOUND or HANGUP.
AGISTATUS = "AGISTATUS"
#: Set by app_queue on the caller's channel.
QUEUESTATUS = "QUEUESTATUS"
#: The ticket an outbound call (follow-up, callback) is about, set by the controller's
#: Originate.
TICKET = "IVR_TICKET"
