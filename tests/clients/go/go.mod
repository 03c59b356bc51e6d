module sightclient

go 1.19
