// Command layering checks the rules of scripts/test that `go list` cannot:
//
//   - cmd/agentd only parses flags, builds the parts and runs them: no
//     method of a type it defines starts a goroutine (state with a
//     lifetime belongs in internal/..., with an owner and a Close);
//   - internal/httpapi and internal/acp reach the canary router, the
//     version history and the guard only through internal/control: they
//     name none of canary.Router, rollback.History, rollback.Guard or their
//     constructors.
//
// It prints each violation with its position and exits 1 if there is any.
//
//	go run ./scripts/ci/layering
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	var bad []string
	fset := token.NewFileSet()
	parse := func(dir string) []*ast.File {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		var files []*ast.File
		for _, m := range matches {
			if strings.HasSuffix(m, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, m, nil, 0)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			files = append(files, f)
		}
		return files
	}
	for _, f := range parse("cmd/agentd") {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if g, ok := n.(*ast.GoStmt); ok {
					bad = append(bad, fmt.Sprintf("%s: method %s of a cmd/agentd type starts a goroutine: move the type to internal/",
						fset.Position(g.Pos()), fn.Name.Name))
				}
				return true
			})
		}
	}
	forbidden := map[string]map[string]bool{
		"canary":   {"Router": true, "NewRouter": true},
		"rollback": {"History": true, "Guard": true, "Open": true, "NewGuard": true},
	}
	for _, dir := range []string{"internal/httpapi", "internal/acp"} {
		for _, f := range parse(dir) {
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if pkg, ok := sel.X.(*ast.Ident); ok && forbidden[pkg.Name][sel.Sel.Name] {
					bad = append(bad, fmt.Sprintf("%s: %s.%s: %s reaches the router, the history and the guard only through internal/control",
						fset.Position(sel.Pos()), pkg.Name, sel.Sel.Name, dir))
				}
				return true
			})
		}
	}
	for _, b := range bad {
		fmt.Println(b)
	}
	if len(bad) > 0 {
		os.Exit(1)
	}
}
