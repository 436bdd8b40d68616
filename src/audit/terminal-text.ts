/**
 * Audit records carry text that callers chose (tool names, arguments, user names, error
 * messages). Printed raw, a control character could move the cursor, rewrite earlier lines or
 * flip the direction of text on an investigator's terminal, so every value read from the log is
 * passed through `toTerminalText` before it is printed.
 */

/** C0 and C1 controls, DEL, zero-width and bidirectional formatting characters, BOM. */
function isUnprintable(code: number): boolean {
  return (
    code < 0x20 ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0x200b && code <= 0x200f) ||
    (code >= 0x2028 && code <= 0x202e) ||
    (code >= 0x2060 && code <= 0x2069) ||
    code === 0xfeff
  );
}

/** The text with every unprintable character written as a visible `\uXXXX` escape. */
export function toTerminalText(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    out += isUnprintable(code) ? `\\u${code.toString(16).padStart(4, '0')}` : char;
  }
  return out;
}
