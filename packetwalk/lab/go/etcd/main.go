// Command etcd is upstream etcd's server entry point. etcd's server module
// carries replace directives, so `go install go.etcd.io/etcd/server/v3@v`
// fails; a main of our own that requires it builds.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
