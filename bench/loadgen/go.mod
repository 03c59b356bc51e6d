module sightbench

go 1.19
