// Package skill loads skill sets from the configuration tree and offers the
// activate_skill tool.
//
// # Layout
//
// Under a configuration root (an [fs.FS]: [os.DirFS] in the server,
// [testing/fstest.MapFS] in tests):
//
//	skills/<set>/<skill>/SKILL.md                skill sets
//	skills/<set>/<skill>/{references,assets,scripts}/...   optional resources
//	skills/tenants/<tenant>/<skill>/SKILL.md     per-tenant forks
//
// "tenants" is therefore not a set name. For a tenant, a fork replaces the
// set's skill of the same name and adds skills the set lacks, in every set.
// Hidden entries (".x") and __pycache__ are skipped everywhere; files
// directly under skills/ and skills/<set>/ are ignored; a directory without
// SKILL.md is reported as a warning.
//
// # SKILL.md
//
// A SKILL.md may start with YAML frontmatter between two "---" lines (see
// [SplitFrontmatter]), parsed with go.yaml.in/yaml/v3:
//
//	name         defaults to the directory name; kebab-case, at most 64 chars
//	description  the trigger text; without it the skill is hidden from the catalog (a warning)
//	when-to-use  optional
//
// Values are scalars, taken as strings exactly as written ("yes" stays
// "yes"); a list or mapping for a known key is an error. Unknown keys are
// allowed and reported as warnings. The title is the first "# " heading of
// the body outside code fences (default: the name).
//
// Resources follow Agentao: references/ and assets/ list their *.md files,
// scripts/ every file, recursively, at most [MaxResources] per directory.
//
// # Errors
//
// [Load] never skips a malformed SKILL.md: bad YAML, an unclosed
// frontmatter, a name that is not kebab-case, two skills with one name in
// a set (or in one tenant's forks), invalid UTF-8. It reports every problem
// at once (errors.Join of [*Problem]), each formatted "path:line: message"
// with the path relative to the configuration root and the line in that
// file. Warnings do not fail the load; see [Catalog.Warnings].
//
// # Concurrency
//
// A [Catalog] and the [*Skill] values it returns are immutable and safe for
// concurrent use; callers must not modify them. The package has no
// package-level state.
//
// # Activation
//
// [NewActivateTool] returns the activate_skill tool for one session's skill
// list. It holds no session state: the session layer passes an
// [ActivateFunc] that records the activation (and persists the active skill
// names), and rebuilds the prompt from them every turn.
package skill
