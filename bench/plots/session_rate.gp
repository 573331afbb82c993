set terminal pngcairo size 1100,620 font 'sans,10'
set output 'session_rate.png'
set style data histogram
set style fill solid 0.85 border -1
set grid ytics
set key outside top center horizontal
set xtics rotate by -25 scale 0
set bmargin 10
set rmargin 8

set style histogram clustered gap 1.5
set logscale y
set ylabel "sessions per second (median, log scale)"
set title "New end-to-end sessions per second on loopback (full handshake, one byte echoed)"
plot 'session_rate.dat' using 2:xtic(1) title "pinned", '' using 3 title "unpinned"
