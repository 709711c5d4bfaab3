"""What runs inside n8n: the JavaScript of the workflow's Code nodes and its expressions.

Kept apart from the workflow's assembly (chatd/n8n/workflow.py) because it is another program's
code, held to n8n's rules: Code nodes cannot `require` built-ins unless n8n allows it, so signing
is left to Crypto nodes, and these scripts only build and compare strings.
"""

from __future__ import annotations

SIGNATURE_TOLERANCE_SECONDS = 300  # chatd's own tolerance for webhook-timestamp

SIGNED_CONTENT_JS = """\
// chatd signs each delivery the Standard Webhooks way: base64 HMAC-SHA256 of
// `${webhook-id}.${webhook-timestamp}.${raw body}`. The Webhook node keeps the raw body
// (option "Raw Body") in the binary field "data"; re-serialising $json.body would not
// reproduce chatd's exact bytes, so the signature is checked over these.
const out = [];
const items = $input.all();
for (let i = 0; i < items.length; i++) {
  const headers = items[i].json.headers || {};
  const raw = (await this.helpers.getBinaryDataBuffer(i, 'data')).toString('utf8');
  out.push({
    json: {
      ...items[i].json,
      signedContent: `${headers['webhook-id']}.${headers['webhook-timestamp']}.${raw}`,
    },
  });
}
return out;
"""

SIGNATURE_CHECK = (
    "={{ String($json.headers['webhook-signature'] || '').split(' ')"
    ".includes('v1,' + $json.expectedSignature)"
    " && Math.abs(Date.now() / 1000 - Number($json.headers['webhook-timestamp']))"
    f" <= {SIGNATURE_TOLERANCE_SECONDS} }}}}"
)

BOT_LOGIC_JS = """\
// ===== Replace this with your bot (AI Agent, etc.) =====
// In:  $json.body is what chatd sent:
//      { sessionId, messageId, seq, userId, guestEmail,
//        message: { content, type, timestamp },
//        userContext: { isAuthenticated, membershipLevel?, ... },
//        sessionMetadata, callbackUrl, deliveryId }
// Out: one item { sessionId, replyTo, callbackUrl,
//                 response: { content, type, quickReplies? }, actions? }
//      type is "text", "quick_reply" or "rich_content"; quickReplies at most 10 labels.
//      actions: [{ type: 'handoff', reason }] hands the chat to the staff inbox (/inbox).
const req = $json.body;
const text = String((req.message && req.message.content) || '').trim();
const lower = text.toLowerCase();

let response;
let actions;
if (/\\b(person|human|agent|someone)\\b/.test(lower)) {
  response = { content: "I'll ask a colleague to join.", type: 'text' };
  actions = [{ type: 'handoff', reason: 'the shopper asked for a person' }];
} else if (/\\b(order|shipping|delivery|track)/.test(lower)) {
  response = {
    content: 'I can help with your order. What is your order number?',
    type: 'text',
  };
} else if (/^(hi|hello|hey)\\b/.test(lower)) {
  response = {
    content: 'Hi! How can I help you today?',
    type: 'quick_reply',
    quickReplies: ['Track my order', 'Returns', 'Talk to a person'],
  };
} else {
  response = { content: `You said: ${text}`, type: 'text' };
}

return {
  json: {
    sessionId: req.sessionId,
    replyTo: req.messageId,
    callbackUrl: req.callbackUrl,
    response,
    ...(actions ? { actions } : {}),
  },
};
"""

CALLBACK_BODY_JS = """\
// chatd checks X-Webhook-Signature (hex HMAC-SHA256) over the exact bytes it receives, so the
// body is serialised once, here; the Crypto node signs this very string and the HTTP Request
// node sends it unchanged (Body Content Type "Raw").
const fallbackUrl = __FALLBACK_URL__;
return {
  json: {
    callbackUrl: $json.callbackUrl || fallbackUrl,
    callbackBody: JSON.stringify({
      sessionId: $json.sessionId,
      replyTo: $json.replyTo,
      response: $json.response,
      ...($json.actions ? { actions: $json.actions } : {}),
    }),
  },
};
"""

SYNC_REPLY_BODY = (
    "={{ JSON.stringify({ sessionId: $json.sessionId, response: $json.response,"
    " ...($json.actions ? { actions: $json.actions } : {}) }) }}"
)
