set terminal pngcairo size 1100,620 font 'sans,10'
set output 'wan_timing.png'
set style data histogram
set style fill solid 0.85 border -1
set grid ytics
set key outside top center horizontal
set xtics rotate by -25 scale 0
set bmargin 10
set rmargin 8

set style histogram errorbars gap 1.5 lw 1
set ylabel "ms from connect() (mean, error bar = standard deviation)"
set title "Layer 4 (direct TCP) vs layer 5, 28 ms round trip, pinned to one CPU"
plot 'wan_timing.dat' using 2:3:xtic(1) title "first byte", \
     '' using 4:5 title "1,000th byte", \
     '' using 6:7 title "1,000,000th byte"
