// XfrmDecodeError: the one error the XFRM/netlink decoder throws, naming the byte offset and the rule broken.

import { NattError, typeError } from '../errors';

/** A netlink/XFRM buffer that breaks a framing or layout rule. `offset` is from the start of the decoded buffer. */
export class XfrmDecodeError extends NattError {
  offset: number;
  rule: string;
  constructor(offset: number, rule: string) {
    if (typeof offset !== 'number') throw typeError('offset', 'a byte offset', offset);
    if (typeof rule !== 'string') throw typeError('rule', 'a string', rule);
    super('ERR_XFRM_DECODE', `bad XFRM netlink message at byte ${offset}: ${rule}`);
    this.offset = offset;
    this.rule = rule;
  }
}
