set terminal pngcairo size 1000,700
set output 'soak.png'
set multiplot layout 2,1 title "fived under the soak (make soak)"
set xlabel 'seconds'
set ylabel 'MiB'
set key top left
plot 'soak.dat' using 1:3 with lines title 'worker RSS', \
     'soak.dat' using 1:($7 > 0 ? $7 : 1/0) with lines title 'worker heap in use', \
     'soak.dat' using 1:2 with lines title 'monitor RSS'
set ylabel 'count'
plot 'soak.dat' using 1:5 with lines title 'worker descriptors', \
     'soak.dat' using 1:4 with lines title 'monitor descriptors', \
     'soak.dat' using 1:6 with lines title 'sessions open (load)'
unset multiplot
