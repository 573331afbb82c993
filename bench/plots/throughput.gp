set terminal pngcairo size 1100,620 font 'sans,10'
set output 'throughput.png'
set style data histogram
set style fill solid 0.85 border -1
set grid ytics
set key outside top center horizontal
set xtics rotate by -25 scale 0
set bmargin 10
set rmargin 8

set style histogram clustered gap 1.5
set ylabel "MB/s (median)"
set title "Loopback throughput"
plot 'throughput.dat' using 2:xtic(1) title "1 stream, pinned", '' using 3 title "8 streams, pinned", \
     '' using 4 title "1 stream, unpinned", '' using 5 title "8 streams, unpinned"
