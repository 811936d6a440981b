module github.com/leastconn/leastconn/bindings/go

go 1.19
