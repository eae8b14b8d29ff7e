// Package prompt assembles the system prompt of a turn.
//
// The system prompt is rebuilt from its parts at the start of every turn
// (and whenever the session's active skills change) and never stored: a
// stored history holds no system message. [Build] is a pure function of
// its [Parts]; the same parts always give the same bytes, so providers can
// cache the stable prefix.
//
// Order, as in Agentao (prompts/builder.py):
//
//  1. "=== Project Instructions ===", the instructions (AGENTAO.md or
//     instructions/<version>.md, frontmatter stripped, see
//     [LoadInstructions]), then "=== Agent Instructions ===" — only when
//     the instructions are not empty;
//  2. the stable base prompt ([Base] in the server);
//  3. the volatile suffix: "=== Available Skills ===", the catalog of the
//     session's inactive skills that have a description, with the
//     instruction to call activate_skill; then "=== Active Skills ===",
//     the full SKILL.md text and resource list of each active skill.
//
// The package has no state and no I/O beyond [LoadInstructions]' reads
// from the fs.FS it is given.
package prompt
