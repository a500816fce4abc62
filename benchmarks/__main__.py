from benchmarks.scan_throughput import main

main()
