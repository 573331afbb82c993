set terminal pngcairo size 1100,620 font 'sans,10'
set output 'attack.png'
set style data histogram
set style fill solid 0.85 border -1
set grid ytics
set key outside top center horizontal
set xtics rotate by -25 scale 0
set bmargin 10
set rmargin 8

set style histogram clustered gap 1.5
set key off
set xtics rotate by -20 scale 0
set multiplot layout 1,2
set title "Legitimate sessions that succeed (%)"
set yrange [0:105]
plot 'attack.dat' using 2:xtic(1)
set title "p99 time to first byte of legitimate sessions (ms)"
set autoscale y
plot 'attack.dat' using 3:xtic(1) lc 2
unset multiplot
